-- want: runtime: cannot modify a library table
function string.upper(s) return s end
