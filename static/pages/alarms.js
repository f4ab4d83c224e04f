/* Alarm centre (报警中心): the visible alarms from /api/v1/alarms/ (rows: id, plate, kind_label,
   level_label, status_label, target_name, occurrences, raised_at), new ones pushed over the
   WebSocket (items of type "alarm": alarm_id and codes, labelled here from the server's
   translations) with a toast and a sound; acknowledge / close with a note. */
(function () {
  "use strict";
  const { t, json, toast, live, alarmBadge } = window.Carloan;
  const LABELS = { kinds: t("kinds"), levels: t("levels"), statuses: t("alarm_statuses") };
  const rows = document.getElementById("alarm-rows");
  const table = rows.closest("table");
  const canHandle = table.dataset.canHandle === "1";
  const statusSel = document.getElementById("status");
  const dialog = document.getElementById("handle");
  let audio = null;

  function label(map, code) { return (map && typeof map === "object" && map[code]) || String(code); }

  function beep() {
    if (!document.getElementById("sound").checked) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = 880; g.gain.value = 0.1; o.connect(g); g.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + 0.25);
    } catch (e) { /* no audio device */ }
  }

  /* A live item in the shape of a list row. */
  function fromLive(item) {
    return {
      id: item.alarm_id, plate: item.plate || "", kind: item.kind, kind_label: label(LABELS.kinds, item.kind),
      level: item.level, level_label: label(LABELS.levels, item.level), status: item.status || "open",
      status_label: label(LABELS.statuses, item.status || "open"), target_name: item.target_name || "",
      occurrences: item.occurrences || 1, raised_at: item.raised_at || "",
    };
  }

  function when(iso) { return (iso || "").replace("T", " ").slice(0, 19); }

  function row(a) {
    const tr = document.createElement("tr");
    tr.dataset.id = a.id;
    tr.className = "level-" + a.level + " status-" + a.status;
    const cells = [when(a.raised_at), a.plate || "", a.kind_label, a.level_label, a.target_name || "", a.status_label, a.occurrences || 1];
    cells.forEach((c) => { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); });
    const actions = document.createElement("td");
    if (canHandle && a.status === "open") actions.appendChild(button("acknowledge", a));
    if (canHandle && a.status !== "closed") actions.appendChild(button("close", a));
    tr.appendChild(actions);
    return tr;
  }

  function button(action, a) {
    const b = document.createElement("button");
    b.textContent = t(action);
    b.dataset.action = action;
    b.addEventListener("click", () => {
      document.getElementById("handle-title").textContent = t(action) + " · " + (a.plate || "") + " · " + a.kind_label;
      document.getElementById("handle-note").value = "";
      dialog.returnValue = "";
      dialog.showModal();
      dialog.onclose = async () => {
        if (dialog.returnValue !== "ok") return;
        try {
          await json("/api/v1/alarms/" + a.id + "/" + action + "/", { method: "POST", body: { note: document.getElementById("handle-note").value } });
          toast(t(action === "close" ? "closed" : "acknowledged"), "ok");
          load();
        } catch (e) { toast(e.message, "error"); }
      };
    });
    return b;
  }

  async function load() {
    const q = statusSel.value ? "?status=" + encodeURIComponent(statusSel.value) : "";
    try {
      const data = await json("/api/v1/alarms/" + q);
      rows.replaceChildren(...(data.results || data).map(row));
      document.body.dataset.alarmsLoaded = "1";
    } catch (e) { toast(e.message, "error"); }
  }
  statusSel.addEventListener("change", load);

  load();
  let first = true;
  live((items) => {
    const fresh = items.filter((i) => i.type === "alarm" && i.alarm_id != null).map(fromLive);
    if (!fresh.length) return;
    const raised = fresh.filter((a) => a.status === "open");
    if (raised.length) beep();
    fresh.forEach((a) => {
      if (a.status === "open") toast(a.plate + " · " + a.kind_label, "alarm");
      const existing = rows.querySelector('tr[data-id="' + a.id + '"]');
      if (!statusSel.value || statusSel.value === a.status) {
        const tr = row(a);
        if (existing) existing.replaceWith(tr); else rows.prepend(tr);
      } else if (existing) existing.remove();
    });
    alarmBadge(raised.length);
    document.body.dataset.liveAlarms = String((parseInt(document.body.dataset.liveAlarms || "0", 10) || 0) + fresh.length);
  }, () => { if (!first) load(); first = false; }); // resync what a reconnect missed
})();
