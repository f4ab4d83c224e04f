/* Track playback (轨迹回放): a vehicle's fixes over a time range from
   /api/v1/vehicles/{id}/track/ ({positions: [{time, lat, lon, speed_kmh, valid, flags, ...}],
   truncated, next_since}; pages followed up to a million fixes), drawn as a polyline with stops marked, played at a chosen speed.
   Invalid fixes and drift are stored and listed by the API but not drawn (as its GeoJSON line). */
(function () {
  "use strict";
  const { t, json, toast } = window.Carloan;
  const cfg = JSON.parse(document.getElementById("map-config").textContent);
  const map = CarloanGeo.createMap("map", cfg);
  const layer = L.layerGroup().addTo(map);
  const form = document.getElementById("track-form");
  const info = document.getElementById("track-info");
  const playBtn = document.getElementById("play"), pauseBtn = document.getElementById("pause");
  let points = [], marker = null, timer = null, index = 0;

  function local(d) { const z = new Date(d.getTime() - d.getTimezoneOffset() * 60000); return z.toISOString().slice(0, 16); }
  const now = new Date();
  form.since.value = form.since.value || local(new Date(now.getTime() - 24 * 3600 * 1000));
  form.until.value = form.until.value || local(now);

  const MAX_POINTS = 1000000;
  let loads = 0;
  function pos(p) { return CarloanGeo.display(p.lat, p.lon, cfg.crs); }

  function stops(pts) { // >= 3 minutes in a row below 5 km/h
    const out = []; let start = null;
    for (let i = 0; i < pts.length; i++) {
      const p = pts[i];
      if ((p.speed_kmh || 0) < 5) {
        if (start === null) start = i;
      } else if (start !== null) {
        const seconds = (Date.parse(pts[i - 1].time) - Date.parse(pts[start].time)) / 1000;
        if (seconds >= 180) out.push({ at: pts[start], seconds });
        start = null;
      }
    }
    if (start !== null) { // still standing at the end of the range
      const seconds = (Date.parse(pts[pts.length - 1].time) - Date.parse(pts[start].time)) / 1000;
      if (seconds >= 180) out.push({ at: pts[start], seconds });
    }
    return out;
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    stop();
    layer.clearLayers(); marker = null; index = 0;
    let since = new Date(form.since.value).toISOString();
    const until = new Date(form.until.value).toISOString();
    /* The API answers at most 200,000 fixes per call: follow next_since until the range is read,
       up to MAX_POINTS (then say that only the first part is drawn). */
    const loaded = [], mine = ++loads;  // a newer submit makes this one stop
    let truncated = false;
    try {
      for (;;) {
        const data = await json("/api/v1/vehicles/" + encodeURIComponent(form.vehicle.value) + "/track/?since=" + encodeURIComponent(since) + "&until=" + encodeURIComponent(until));
        if (mine !== loads) return;
        for (const p of data.positions || []) loaded.push(p);
        if (!data.truncated || !data.next_since) break;
        if (loaded.length >= MAX_POINTS || !(data.positions || []).length) { truncated = true; break; }
        since = data.next_since;
        info.textContent = loaded.length + " " + t("points") + " …";
      }
    } catch (e) { toast(e.status === 404 ? t("no such vehicle") : e.message, "error"); return; }
    points = loaded.filter((p) => p.valid && p.lat != null && !(p.flags || []).includes("drift"));
    if (!points.length) { info.textContent = t("no track"); return; }
    if (truncated) toast(t("truncated"), "error");
    const line = L.polyline(points.map(pos), { color: "#2166ac", weight: 4 }).addTo(layer);
    map.fitBounds(line.getBounds(), { padding: [20, 20] });
    const st = stops(points);
    st.forEach((s) => L.circleMarker(pos(s.at), { radius: 6, color: "#d73027" })
      .bindTooltip(t("stop") + " " + Math.round(s.seconds / 60) + " min · " + s.at.time.slice(11, 16)).addTo(layer));
    marker = L.circleMarker(pos(points[0]), { radius: 8, color: "#000", fillColor: "#fdae61", fillOpacity: 1 }).addTo(layer);
    info.textContent = points.length + " " + t("points") + " · " + st.length + " " + t("stops");
    playBtn.disabled = false;
  });

  function stop() { if (timer) clearInterval(timer); timer = null; pauseBtn.disabled = true; }
  playBtn.addEventListener("click", () => {
    if (!points.length) return;
    stop();
    pauseBtn.disabled = false;
    const speed = parseInt(document.getElementById("speed").value, 10) || 10;
    let clock = Date.parse(points[index].time);
    timer = setInterval(() => {
      clock += 200 * speed;
      while (index < points.length - 1 && Date.parse(points[index + 1].time) <= clock) index++;
      const p = points[index];
      marker.setLatLng(pos(p));
      info.textContent = p.time.replace("T", " ").slice(0, 19) + " · " + (p.speed_kmh || 0) + " km/h";
      if (index >= points.length - 1) { stop(); index = 0; }
    }, 200);
  });
  pauseBtn.addEventListener("click", stop);
  if (form.vehicle.value) form.requestSubmit();
})();
