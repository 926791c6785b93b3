-- want: runtime: attempt to call a non-function object
local os = require("os")
