// The explorer's one script. On a page whose <body> names an events query
// (data-live), it follows the node's event stream (/events, server-sent
// events) and adds what arrives as table rows. Everything from the stream
// is set as text (textContent), never parsed as HTML: note values, reasons
// and logs are written by anyone.
(function () {
  "use strict";
  var live = document.body.getAttribute("data-live");
  var state = document.getElementById("live");
  if (!live || !window.EventSource) {
    if (state) state.textContent = "not available in this browser";
    return;
  }
  var maxRows = 50;
  var seen = {};

  // word is an API enum as the pages say it (explorer.word in Go).
  function word(name) {
    if (!name) return "";
    var prefixes = ["RECEIPT_STATUS_", "PHASE_", "ROLE_", "TRANSACTION_STATE_", "ENCRYPTED_BATCH_STATE_"];
    for (var i = 0; i < prefixes.length; i++) {
      if (name.indexOf(prefixes[i]) === 0) {
        var rest = name.slice(prefixes[i].length);
        return rest === "UNSPECIFIED" ? "" : rest.toLowerCase().replace(/_/g, " ");
      }
    }
    return name.toLowerCase();
  }

  // add puts a row at the top of table id's body; each cell is text, or
  // [text, href] for a link within the explorer.
  function add(id, key, attr, cells, cls) {
    var body = document.querySelector("#" + id + " tbody");
    if (!body || seen[id + key]) return;
    seen[id + key] = true;
    var tr = document.createElement("tr");
    tr.className = "fresh";
    if (attr) tr.setAttribute(attr, key);
    cells.forEach(function (c, i) {
      var td = document.createElement("td");
      if (cls && cls[i]) td.className = cls[i];
      if (Array.isArray(c)) {
        var a = document.createElement("a");
        a.setAttribute("href", c[1]);
        a.textContent = c[0];
        td.appendChild(a);
      } else {
        td.textContent = c;
      }
      tr.appendChild(td);
    });
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > maxRows) body.deleteRow(-1);
  }

  function txRow(key, height, rc) {
    var gas = rc.gas && rc.gas.total ? rc.gas.total : "0";
    var status = word(rc.status);
    add("txs", key, "data-tx", [[rc.tx_id, "/tx/" + rc.tx_id], height ? [height, "/block/" + height] : "—", status, word(rc.phase), rc.reason || "", gas],
      ["id", "", "status " + status, "", "reason", "num"]);
  }

  var next = null; // the height to resume from after a break
  var m = /[?&]start_height=(\d+)/.exec(live);
  if (m) next = m[1];

  function handle(ev) {
    if (ev.block) {
      var b = ev.block, h = b.height || "0";
      add("blocks", h, "data-height", [[h, "/block/" + h], String(b.tx_count || 0), b.hash], ["", "num", "id"]);
      var head = document.getElementById("head");
      if (head) {
        head.textContent = h;
        head.setAttribute("href", "/block/" + h);
      }
      next = String(Number(h) + 1);
    } else if (ev.receipt) {
      txRow(ev.receipt.tx_id, ev.height, ev.receipt);
    } else if (ev.refused) {
      txRow(ev.refused.tx_id, "", ev.refused);
    } else if (ev.encrypted_batch) {
      var e = ev.encrypted_batch, n = e.number || "0", st = word(e.state);
      add("batches", n + " " + st + " " + (e.shares || []).length, null,
        [n, st, String((e.payload_ids || []).length), (e.shares || []).length + " of " + (e.needed || 0)]);
    }
  }

  function connect() {
    var url = live;
    if (next !== null) url = url.replace(/([?&]start_height=)\d+/, "$1" + next);
    var src = new EventSource(url);
    src.onopen = function () { if (state) state.textContent = "following"; };
    src.onmessage = function (msg) { handle(JSON.parse(msg.data)); };
    // A break (or the node's "error" event): reconnect from the next
    // block, not from where the page began, so nothing repeats.
    src.addEventListener("error", function () {
      src.close();
      if (state) state.textContent = "reconnecting";
      setTimeout(connect, 2000);
    });
  }
  connect();
})();
