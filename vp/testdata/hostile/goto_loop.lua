-- want: gas: out of gas (limit 1000000)
::top::
goto top
