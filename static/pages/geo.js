/* WGS-84 -> GCJ-02 / BD-09 for display on Chinese tile providers (positions are WGS-84 everywhere
   in storage and APIs; only the map layer converts), and each provider's tile grid as a Leaflet
   map (createMap: config from carloan.maps.map_config). The published GCJ-02 offset formula, the same
   one carloan.geo implements in Python for the server side. */
(function () {
  "use strict";
  const A = 6378245.0, EE = 0.00669342162296594323, PI = Math.PI, XPI = PI * 3000.0 / 180.0;
  function outOfChina(lat, lon) { return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271; }
  function tLat(x, y) {
    let r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    r += (160.0 * Math.sin(y / 12.0 * PI) + 320 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    return r;
  }
  function tLon(x, y) {
    let r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    r += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    return r;
  }
  function wgsToGcj(lat, lon) {
    if (outOfChina(lat, lon)) return [lat, lon];
    let dLat = tLat(lon - 105.0, lat - 35.0), dLon = tLon(lon - 105.0, lat - 35.0);
    const radLat = lat / 180.0 * PI;
    let magic = Math.sin(radLat); magic = 1 - EE * magic * magic;
    const sq = Math.sqrt(magic);
    dLat = (dLat * 180.0) / ((A * (1 - EE)) / (magic * sq) * PI);
    dLon = (dLon * 180.0) / (A / sq * Math.cos(radLat) * PI);
    return [lat + dLat, lon + dLon];
  }
  function gcjToBd(lat, lon) {
    const z = Math.sqrt(lon * lon + lat * lat) + 0.00002 * Math.sin(lat * XPI);
    const th = Math.atan2(lat, lon) + 0.000003 * Math.cos(lon * XPI);
    return [z * Math.sin(th) + 0.006, z * Math.cos(th) + 0.0065];
  }
  /* (lat, lon) WGS-84 -> the map's coordinate system ("wgs84" | "gcj02" | "bd09"). */
  function display(lat, lon, crs) {
    if (crs === "gcj02") return wgsToGcj(lat, lon);
    if (crs === "bd09") { const g = wgsToGcj(lat, lon); return gcjToBd(g[0], g[1]); }
    return [lat, lon];
  }
  /* Baidu's tile grid (carloan.geo BAIDU_MERCATOR): Leaflet's ellipsoidal Mercator on the Clarke 1866
     ellipsoid, 2^(18 - z) metres per pixel, origin (0, 0), y growing north. Leaflet counts tile rows
     southwards, so Baidu's row is -y - 1. */
  const BaiduMercator = L.extend({}, L.Projection.Mercator, {
    R: 6378206, R_MINOR: 6356584.314245179,
    bounds: L.bounds([-20037726.37, -20037726.37], [20037726.37, 20037726.37]),
  });
  const BaiduCRS = L.extend({}, L.CRS.Earth, {
    code: "BAIDU", projection: BaiduMercator,
    transformation: new L.Transformation(1, 0, -1, 0),
    scale: (zoom) => Math.pow(2, zoom - 18),
    zoom: (scale) => Math.log(scale) / Math.LN2 + 18,
  });
  const BaiduTiles = L.TileLayer.extend({
    getTileUrl(coords) {
      return L.Util.template(this._url, L.extend({
        s: this._getSubdomain(coords), x: coords.x, y: -coords.y - 1, z: this._getZoomForUrl(),
      }, this.options));
    },
  });
  function crsOf(config) { return config.grid === "baidu" ? BaiduCRS : L.CRS.EPSG3857; }
  function baseLayer(config) {
    const options = {
      subdomains: config.subdomains || "abc", minZoom: config.min_zoom || 1,
      maxZoom: config.max_zoom || 18, attribution: config.attribution,
    };
    return config.grid === "baidu" ? new BaiduTiles(config.tiles, options) : L.tileLayer(config.tiles, options);
  }
  /* A Leaflet map on the provider's grid with its tiles, opened at config.center (WGS-84). */
  function createMap(el, config, options) {
    const map = L.map(el, L.extend({
      crs: crsOf(config), minZoom: config.min_zoom || 1, maxZoom: config.max_zoom || 18,
    }, options || {}));
    map.setView(display(config.center[0], config.center[1], config.crs), config.zoom);
    baseLayer(config).addTo(map);
    return map;
  }
  window.CarloanGeo = { display, wgsToGcj, gcjToBd, baseLayer, createMap, crsOf, BaiduCRS };
})();
