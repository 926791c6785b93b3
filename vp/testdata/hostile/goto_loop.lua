-- want: gas: out of gas (limit 100000)
::top::
goto top
