/* The live map (实时监控): one snapshot call paints every visible vehicle, clustered; the
   WebSocket's position / device_status / alarm items are queued and applied once a second. */
(function () {
  "use strict";
  const { t, json, toast, live, alarmBadge } = window.Carloan;
  const cfg = JSON.parse(document.getElementById("map-config").textContent);
  const mapEl = document.getElementById("map");
  const COLORS = { moving: "#1a9850", parked: "#2166ac", sleeping: "#8073ac", offline: "#878787", alarm: "#d73027" };
  const map = CarloanGeo.createMap(mapEl, cfg, { preferCanvas: true });
  /* chunkedLoading: 10,000 markers are added in slices between frames (the page stays responsive);
     when the last slice is in, the next frame is the first paint of the whole fleet
     (body[data-first-paint-ms]: ms since navigation start, read by bench/pages.py). */
  let painted = null;
  const cluster = L.markerClusterGroup({
    chunkedLoading: true, disableClusteringAtZoom: 16, maxClusterRadius: 60,
    chunkProgress: (done, total) => { if (done === total && painted) { painted(); painted = null; } },
  });
  map.addLayer(cluster);
  function label(v) { return v.plate + " · " + t(v.state) + (v.speed ? " · " + v.speed + " km/h" : ""); }
  cluster.on("click", (e) => { if (e.layer.vehicleId != null) showPanel(e.layer.vehicleId); });
  cluster.on("mouseover", (e) => {
    const v = vehicles.get(e.layer.vehicleId);
    if (v) e.layer.bindTooltip(label(v)).openTooltip();
  });
  cluster.on("mouseout", (e) => { if (e.layer.vehicleId != null) e.layer.unbindTooltip(); });

  // id -> {id, plate, lat, lon, state, speed, course, fix_time, devices: [[id, imei, online]], borrower, marker}
  const vehicles = new Map();
  const hidden = new Set();   // states switched off in the legend
  let scope = null;           // customer ids of the subtree picked in the tree (null: all)
  function inScope(v) { return !scope || scope.has(v.customer_id); }
  let openPanel = null;

  function where(v) { return CarloanGeo.display(v.lat, v.lon, cfg.crs); }
  function style(v) { return { radius: 7, color: "#fff", weight: 1, fillColor: COLORS[v.state] || "#999", fillOpacity: 0.95 }; }
  function visible(v) { return v.lat != null && !hidden.has(v.state) && inScope(v); }

  function place(v) {
    if (v.lat == null) return;
    if (!v.marker) {
      // No per-marker tooltip or listener: the cluster group delegates (10,000 markers).
      v.marker = L.circleMarker(where(v), style(v));
      v.marker.vehicleId = v.id;
    } else {
      v.marker.setLatLng(where(v));
      v.marker.setStyle(style(v));
    }
  }

  function refreshCounts() {
    const counts = { moving: 0, parked: 0, sleeping: 0, offline: 0, alarm: 0 };
    vehicles.forEach((v) => { if (counts[v.state] !== undefined) counts[v.state] += 1; });
    Object.entries(counts).forEach(([k, n]) => {
      const el = document.querySelector('[data-count="' + k + '"]');
      if (el) el.textContent = n;
    });
  }

  async function loadSnapshot() {
    const started = performance.now();
    const data = await json(mapEl.dataset.snapshot);
    performance.mark("snapshot-fetched");
    const f = Object.fromEntries(data.fields.map((name, i) => [name, i]));
    cluster.clearLayers();
    vehicles.clear();
    const markers = [];
    for (const row of data.vehicles) {
      const v = { id: row[f.id], plate: row[f.plate], customer_id: row[f.customer_id], lat: row[f.lat], lon: row[f.lon],
        state: row[f.state], speed: row[f.speed], course: row[f.course], fix_time: row[f.fix_time],
        devices: row[f.devices] || [], borrower: row[f.borrower] || "" };
      vehicles.set(v.id, v);
      place(v);
      if (v.marker && visible(v)) markers.push(v.marker);
    }
    performance.mark("markers-built");
    painted = () => requestAnimationFrame(() => {
      if (!document.body.dataset.firstPaintMs) document.body.dataset.firstPaintMs = String(Math.round(performance.now()));
    });
    if (!markers.length) { painted(); painted = null; }
    cluster.addLayers(markers);
    refreshCounts();
    refreshTreeOnline();
    renderList();
    document.body.dataset.snapshotMs = String(Math.round(performance.now() - started));
    document.body.dataset.vehicles = String(vehicles.size);
  }

  /* Live items (carloan.realtime) are only queued here; flush() applies them once a second, so a
     busy fleet costs one cluster refresh per second, not one per fix.
     position: lat, lon, speed_kmh, course, fix_time (valid realtime fixes only);
     device_status: device_id, online, acc, battery_pct; alarm: alarm_id, vehicle_id, kind, status;
     command: device_id, kind, status, reply_text, failure_reason. */
  const pendingFix = new Map();     // vehicle id -> latest position item
  const pendingStatus = new Map();  // device id -> latest device_status item
  const pendingAlarm = new Set();   // vehicle ids with a new open alarm
  function apply(items) {
    for (const item of items) {
      if (item.vehicle_id == null) continue;
      if (item.type === "position") {
        const prev = pendingFix.get(item.vehicle_id);
        if (!prev || !item.fix_time || !prev.fix_time || Date.parse(item.fix_time) >= Date.parse(prev.fix_time)) pendingFix.set(item.vehicle_id, item);
      } else if (item.type === "device_status") {
        pendingStatus.set(item.device_id, item);
      } else if (item.type === "alarm") {
        if ((item.status || "open") !== "open") continue;
        pendingAlarm.add(item.vehicle_id);
        const kinds = t("kinds");
        toast((item.plate || "") + " · " + ((kinds && kinds[item.kind]) || item.kind || t("new alarm")), "alarm");
        alarmBadge(1);
      } else if (item.type === "command" && openPanel === item.vehicle_id) {
        const kinds = t("command_kinds"), statuses = t("command_statuses");
        toast((item.imei || "") + " · " + (kinds[item.kind] || item.kind) + ": " + (statuses[item.status] || item.status) +
          (item.failure_reason ? " · " + item.failure_reason : ""), item.status === "failed" || item.status === "expired" ? "error" : "ok");
      }
    }
  }

  function recompute(v) { // alarm > moving > parked > sleeping > offline, as the snapshot decides
    if (v.state === "alarm") return;
    if (v.devices.some((d) => d[2])) v.state = (v.speed || 0) >= 5 ? "moving" : "parked";
    else if (v.state !== "sleeping") v.state = "offline";
  }

  function flush() {
    if (!pendingFix.size && !pendingStatus.size && !pendingAlarm.size) return;
    const touched = new Map();
    for (const [id, item] of pendingFix) {
      const v = vehicles.get(id);
      if (!v || item.lat == null || item.lon == null) continue; // not in the snapshot: next resync
      v.lat = item.lat; v.lon = item.lon;
      v.speed = item.speed_kmh != null ? Math.round(item.speed_kmh * 10) / 10 : 0;
      if (item.course != null) v.course = item.course;
      if (item.fix_time) v.fix_time = Date.parse(item.fix_time) / 1000;
      const dev = v.devices.find((d) => d[0] === item.device_id);
      if (dev) dev[2] = 1; // a device that just sent a fix is online
      touched.set(id, v);
    }
    for (const item of pendingStatus.values()) {
      const v = vehicles.get(item.vehicle_id);
      const dev = v && v.devices.find((d) => d[0] === item.device_id);
      if (!dev) continue;
      if (item.online != null) dev[2] = item.online ? 1 : 0;
      touched.set(v.id, v);
    }
    for (const id of pendingAlarm) {
      const v = vehicles.get(id);
      if (v) { v.state = "alarm"; touched.set(id, v); }
    }
    pendingFix.clear(); pendingStatus.clear(); pendingAlarm.clear();
    const moved = [];
    for (const v of touched.values()) {
      recompute(v);
      const hadMarker = !!v.marker;
      place(v);
      if (!hadMarker && v.marker && visible(v)) cluster.addLayer(v.marker);
      if (v.marker) moved.push(v.marker);
    }
    if (moved.length) cluster.refreshClusters(moved);
    refreshCounts();
    refreshTreeOnline();
    renderList(); // the sidebar's state dots (at most 200 rows)
    document.body.dataset.liveUpdates = String((parseInt(document.body.dataset.liveUpdates || "0", 10) || 0) + touched.size);
    if (openPanel && touched.has(openPanel)) showPanel(openPanel, true);
  }
  setInterval(flush, 1000);

  // Sidebar: search by plate / IMEI / borrower; the first 200 matches.
  const search = document.getElementById("search");
  const list = document.getElementById("vehicle-list");
  function renderList() {
    const q = (search.value || "").trim().toLowerCase();
    const rows = [];
    for (const v of vehicles.values()) {
      if (!inScope(v)) continue;
      if (q && !(v.plate.toLowerCase().includes(q) || v.borrower.toLowerCase().includes(q) || v.devices.some((d) => d[1].includes(q)))) continue;
      rows.push(v);
      if (rows.length >= 200) break;
    }
    list.replaceChildren(...rows.map((v) => {
      const li = document.createElement("li");
      li.dataset.id = v.id;
      li.innerHTML = '<i class="dot ' + v.state + '"></i>';
      li.append(v.plate + (v.borrower ? " · " + v.borrower : ""));
      li.addEventListener("click", () => { if (v.lat != null) map.setView(where(v), 16); showPanel(v.id); });
      return li;
    }));
    document.getElementById("count-shown").textContent = rows.length + " / " + vehicles.size;
  }
  search.addEventListener("input", () => { renderList(); markTree(); });
  function redraw() {
    cluster.clearLayers();
    cluster.addLayers(Array.from(vehicles.values()).filter((v) => v.marker && visible(v)).map((v) => v.marker));
  }
  document.querySelectorAll(".legend input[data-state]").forEach((box) => box.addEventListener("change", () => {
    if (box.checked) hidden.delete(box.dataset.state); else hidden.add(box.dataset.state);
    redraw();
  }));

  /* Customer tree (customer_tree() in carloan/pages/selectors.py): rows in MPTT preorder, so a
     node's subtree is the run of following rows with a greater level. Vehicle totals come from
     the server; online counts are recounted from the snapshot and live items (same rule: a
     mounted device online). Clicking a customer limits the map and the list to its subtree. */
  const treeData = JSON.parse(document.getElementById("customer-tree-data").textContent);
  const tf = Object.fromEntries(treeData.fields.map((name, i) => [name, i]));
  const nodes = treeData.customers.map((r, i) => ({ i: i, id: r[tf.id], parent: r[tf.parent], name: r[tf.name],
    level: r[tf.level], vehicles: r[tf.vehicles], online: r[tf.online], kids: [] }));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  nodes.forEach((n) => { const p = byId.get(n.parent); if (p) p.kids.push(n); });
  const treeEl = document.getElementById("customer-tree");
  const allBtn = document.getElementById("tree-all");
  const topLevel = nodes.length ? Math.min(...nodes.map((n) => n.level)) : 0;
  let picked = null;

  function subtreeOf(n) {
    const ids = new Set([n.id]);
    for (let j = n.i + 1; j < nodes.length && nodes[j].level > n.level; j++) ids.add(nodes[j].id);
    return ids;
  }
  function countText(n) { return n.online + " / " + n.vehicles; }
  function buildNode(n) {
    const li = document.createElement("li");
    li.setAttribute("role", "treeitem");
    const row = document.createElement("div");
    row.className = "node";
    const caret = document.createElement("button");
    caret.type = "button";
    caret.className = "caret";
    caret.setAttribute("aria-label", t("expand"));
    if (!n.kids.length) caret.disabled = true;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = n.name;
    const count = document.createElement("span");
    count.className = "n";
    count.title = t("online") + " / " + t("vehicles");
    count.textContent = countText(n);
    row.append(caret, name, count);
    li.append(row);
    n.li = li; n.count = count;
    if (n.kids.length) {
      const ul = document.createElement("ul");
      ul.setAttribute("role", "group");
      n.kids.forEach((k) => ul.append(buildNode(k)));
      li.append(ul);
      // Roots and their children open; deeper levels start folded (large trees stay short).
      setOpen(n, n.level - topLevel < 1);
      caret.addEventListener("click", (e) => { e.stopPropagation(); setOpen(n, !n.open); });
    }
    row.addEventListener("click", () => pick(picked === n ? null : n));
    return li;
  }
  function setOpen(n, open) {
    n.open = open;
    n.li.classList.toggle("open", open);
    n.li.setAttribute("aria-expanded", String(open));
  }
  function pick(n) {
    if (picked) picked.li.classList.remove("picked");
    picked = n;
    scope = n ? subtreeOf(n) : null;
    if (n) n.li.classList.add("picked");
    allBtn.hidden = !n;
    redraw();
    renderList();
    if (n) {
      const pts = [];
      vehicles.forEach((v) => { if (v.lat != null && scope.has(v.customer_id)) pts.push(where(v)); });
      if (pts.length) map.fitBounds(L.latLngBounds(pts), { maxZoom: 15, padding: [20, 20] });
    }
  }
  function refreshTreeOnline() {
    if (!nodes.length) return;
    const own = new Map();
    vehicles.forEach((v) => { if (v.devices.some((d) => d[2])) own.set(v.customer_id, (own.get(v.customer_id) || 0) + 1); });
    const sums = new Map();
    for (let j = nodes.length - 1; j >= 0; j--) { // children before parents
      const n = nodes[j];
      const total = (own.get(n.id) || 0) + (sums.get(n.id) || 0);
      n.online = total;
      if (byId.has(n.parent)) sums.set(n.parent, (sums.get(n.parent) || 0) + total);
      n.count.textContent = countText(n);
    }
  }
  // Search reaches the tree too: customers whose name matches are marked and their branch opened.
  function markTree() {
    const q = (search.value || "").trim().toLowerCase();
    nodes.forEach((n) => {
      const hit = !!q && n.name.toLowerCase().includes(q);
      n.li.classList.toggle("hit", hit);
      for (let p = hit ? byId.get(n.parent) : null; p; p = byId.get(p.parent)) if (p.kids.length) setOpen(p, true);
    });
  }
  nodes.filter((n) => !byId.has(n.parent)).forEach((n) => treeEl.append(buildNode(n)));
  allBtn.addEventListener("click", () => pick(null));

  // Vehicle panel with command buttons (confirmation; the API checks the permission).
  const panel = document.getElementById("panel");
  async function showPanel(id, quiet) {
    openPanel = id;
    let data;
    try { data = await json(mapEl.dataset.panel.replace(/0\.json$/, id + ".json")); }
    catch (e) { if (!quiet) toast(e.message, "error"); return; }
    const dev = data.devices.map((d) =>
      "<li><b>" + d.identifier + "</b> " + d.protocol + " · " + (d.kind === "wired" ? t("wired") : t("wireless")) +
      " · " + (d.online ? t("online") : t("offline")) + "<br>" + t("last fix") + ": " + (d.last_fix_at || "-") +
      " · " + (d.last_speed_kmh != null ? d.last_speed_kmh + " km/h" : "") +
      " · ACC " + (d.last_acc == null ? "-" : d.last_acc ? t("on") : t("off")) +
      " · " + t("battery") + " " + (d.battery_pct != null ? d.battery_pct + "%" : "-") +
      '<br><span class="cmds" data-imei="' + d.identifier + '">' +
      (d.commands || []).map((c) => '<button data-kind="' + c.kind + '"></button>').join("") +
      "</span></li>").join("");
    const al = data.alarms.map((a) => "<li>" + a.raised_at.slice(0, 16).replace("T", " ") + " " + a.kind + " · " + a.status + "</li>").join("");
    panel.innerHTML = '<button class="close" aria-label="close">×</button><h2></h2><p class="meta"></p>' +
      "<h3>" + t("devices") + "</h3><ul>" + dev + "</ul><h3>" + t("recent alarms") + "</h3><ul>" + (al || "<li>-</li>") + "</ul>" +
      '<p><a href="/playback/?vehicle=' + data.id + '">' + t("track playback") + "</a></p>";
    panel.querySelector("h2").textContent = data.plate;
    panel.querySelectorAll(".cmds").forEach((span, i) => span.querySelectorAll("button").forEach((b, j) => {
      b.textContent = data.devices[i].commands[j].label;
    }));
    panel.querySelector(".meta").textContent = data.customer + " · " + (data.borrower || "") + " · " + t("risk level") + " " + data.risk_level;
    panel.hidden = false;
    panel.querySelector(".close").onclick = () => { panel.hidden = true; openPanel = null; };
    panel.querySelectorAll(".cmds button").forEach((b) => b.addEventListener("click", async () => {
      const imei = b.parentElement.dataset.imei;
      if (!confirm(t("confirm command") + ": " + b.textContent + " → " + imei)) return;
      try {
        await json("/api/v1/commands/", { method: "POST", body: { imei: imei, kind: b.dataset.kind, params: {} } });
        toast(t("command sent"), "ok");
      } catch (e) { toast(t("command refused") + ": " + e.message, "error"); }
    }));
  }

  window.CarloanMonitor = { map, cluster, vehicles, flush, pick: (id) => pick(byId.get(id) || null) }; // for the browser test and the console
  loadSnapshot().catch((e) => toast(e.message, "error"));
  let first = true;
  live(apply, () => { if (!first) loadSnapshot(); first = false; }); // resync after a reconnect
})();
