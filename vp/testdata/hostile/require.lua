-- want: runtime: require is not allowed in the sandbox
local os = require("os")
