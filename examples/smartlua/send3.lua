transfer('Ifni9gFFvIBsyXRJTMSFKPnUJIU+lPpcm+Fn6ixtkTw=', 3)
