-- want: compile: identifier "__fx_g" uses the reserved prefix "__fx_"
__fx_g = 1e300
while true do end
