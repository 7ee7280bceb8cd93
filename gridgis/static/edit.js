/* gridgis edit page (/edit/{community_code}, served by `gridgis serve`): move a building
   or a street block to a neighbouring grid, merge two grids, split one along a drawn
   line; preview (households before/after, band / contiguity / tiling) before saving;
   undo. Writes go to POST /grids/edits[/preview|/undo] with the bearer token typed in. */
(function () {
  "use strict";
  var panel = document.getElementById("panel");
  var community = panel.getAttribute("data-community");
  var map = L.map("map", { doubleClickZoom: false });
  var state = { mode: null, picks: [], line: [], pending: null, data: null };
  var layers = { grids: null, buildings: null, roads: null, picks: L.layerGroup().addTo(map), preview: null };
  var MODES = {
    move_building: "移动楼栋：先点楼栋，再点相邻网格",
    move_block: "移动街区：先点街区内一点，再点相邻网格",
    merge: "合并网格：依次点两个相邻网格（保留第一个的属性）",
    split: "拆分网格：先点要拆分的网格，再点画线（至少两点，在网格外起止），双击结束；或在下方选择一条道路"
  };

  panel.innerHTML =
    '<h3>网格编辑 · <span id="ge-community"></span></h3>' +
    '<label>令牌 <input id="ge-token" type="password" autocomplete="off" placeholder="GRIDGIS_API_TOKEN"></label>' +
    '<label>原因 <input id="ge-reason" type="text" placeholder="如：社区会议决定"></label>' +
    '<div class="ge-modes">' +
    '<button data-mode="move_building">移动楼栋</button>' +
    '<button data-mode="move_block">移动街区</button>' +
    '<button data-mode="merge">合并网格</button>' +
    '<button data-mode="split">拆分网格</button></div>' +
    '<div id="ge-hint">请选择一种编辑</div>' +
    '<label id="ge-road-box" hidden>沿道路拆分 <select id="ge-road"><option value="">（选择道路）</option></select></label>' +
    '<div id="ge-preview"></div>' +
    '<div class="ge-actions"><button id="ge-save" disabled>保存</button>' +
    '<button id="ge-cancel">取消</button><button id="ge-undo">撤销上一次编辑</button></div>' +
    '<div id="ge-status" role="status"></div>';
  document.getElementById("ge-community").textContent = community;
  var tokenBox = document.getElementById("ge-token");
  tokenBox.value = sessionStorage.getItem("gridgis-token") || "";
  tokenBox.addEventListener("change", function () {
    sessionStorage.setItem("gridgis-token", tokenBox.value.trim());
  });

  function $(id) { return document.getElementById(id); }
  function status(text, bad) {
    var s = $("ge-status");
    s.textContent = text;
    s.className = bad ? "ge-bad" : "ge-ok";
  }

  // -- geometry: which feature is under a point (lon/lat) ------------------------------
  function inRing(x, y, ring) {
    var inside = false;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
      if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  }
  function inGeometry(x, y, g) {
    var polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    for (var p = 0; p < polys.length; p++) {
      if (!inRing(x, y, polys[p][0])) continue;
      var hole = false;
      for (var h = 1; h < polys[p].length; h++) if (inRing(x, y, polys[p][h])) hole = true;
      if (!hole) return true;
    }
    return false;
  }
  function featureAt(collection, latlng) {
    if (!collection) return null;
    var f = collection.features;
    for (var i = 0; i < f.length; i++) if (f[i].geometry && inGeometry(latlng.lng, latlng.lat, f[i].geometry)) return f[i];
    return null;
  }

  // -- drawing --------------------------------------------------------------------------
  function gridLabel(p) {
    return String(p.grid_code).slice(-3) + "号 " + (p.households == null ? "" : p.households + "户");
  }
  function draw(data) {
    if (layers.grids) map.removeLayer(layers.grids);
    if (layers.buildings) map.removeLayer(layers.buildings);
    if (layers.roads) map.removeLayer(layers.roads);
    layers.roads = L.geoJSON(data.roads || { type: "FeatureCollection", features: [] }, {
      interactive: false,
      style: function () { return { color: "#888", weight: 2, opacity: 0.8 }; }
    }).addTo(map);
    var select = $("ge-road"), seen = {};
    select.length = 1;
    ((data.roads || {}).features || []).forEach(function (f) {
      var id = f.properties.road_id;
      if (id == null || seen[id]) return;
      seen[id] = true;
      var o = document.createElement("option");
      o.value = id;
      o.textContent = (f.properties.name || "无名道路") + "（" + id + "）";
      select.appendChild(o);
    });
    layers.grids = L.geoJSON(data.grids, {
      interactive: false,
      style: function () { return { color: "#1f5fa8", weight: 2, fillColor: "#9ec5ee", fillOpacity: 0.25 }; },
      onEachFeature: function (f, l) {
        l.bindTooltip(gridLabel(f.properties), { permanent: true, direction: "center", className: "ge-label", interactive: false });
      }
    }).addTo(map);
    layers.buildings = L.geoJSON(data.buildings || { type: "FeatureCollection", features: [] }, {
      interactive: false,
      style: function () { return { color: "#7a4b1c", weight: 1, fillColor: "#d9a066", fillOpacity: 0.7 }; }
    }).addTo(map);
  }
  function load(fit) {
    return fetch("/edit/" + community + "/data").then(function (r) {
      if (!r.ok) throw new Error("读取网格失败：" + r.status);
      return r.json();
    }).then(function (data) {
      state.data = data;
      draw(data);
      if (fit) map.fitBounds(layers.grids.getBounds());
      window.gridEdit.ready = true;
    }).catch(function (e) { status(String(e.message || e), true); });
  }

  // -- the edit being built -------------------------------------------------------------
  function reset(keepMode) {
    state.picks = [];
    state.line = [];
    state.pending = null;
    layers.picks.clearLayers();
    if (layers.preview) { map.removeLayer(layers.preview); layers.preview = null; }
    $("ge-preview").innerHTML = "";
    $("ge-save").disabled = true;
    if (!keepMode) state.mode = null;
    $("ge-road").value = "";
    $("ge-road-box").hidden = state.mode !== "split";
    $("ge-hint").textContent = state.mode ? MODES[state.mode] : "请选择一种编辑";
    var buttons = panel.querySelectorAll(".ge-modes button");
    for (var i = 0; i < buttons.length; i++) buttons[i].classList.toggle("ge-on", buttons[i].getAttribute("data-mode") === state.mode);
  }
  function mark(latlng, color) {
    L.circleMarker(latlng, { radius: 6, color: color || "#d7301f", interactive: false }).addTo(layers.picks);
  }
  function onClick(e) {
    var m = state.mode, ll = e.latlng;
    if (!m || state.pending) return;
    var grid = featureAt(state.data && state.data.grids, ll);
    if (m === "move_building" && state.picks.length === 0) {
      var b = featureAt(state.data && state.data.buildings, ll);
      if (!b) return status("此处没有楼栋", true);
      state.picks.push(b.properties.building_id); mark(ll);
      status("已选楼栋 " + b.properties.building_id + "，请点目标网格");
    } else if (m === "move_block" && state.picks.length === 0) {
      state.picks.push([ll.lng, ll.lat]); mark(ll);
      status("已选街区，请点目标网格");
    } else if (m === "split" && state.picks.length === 0) {
      if (!grid) return status("此处没有网格", true);
      state.picks.push(grid.properties.grid_code); mark(ll, "#238b45");
      status("已选网格 " + grid.properties.grid_code + "，请画拆分线，双击结束");
    } else if (m === "split") {
      var last = state.line[state.line.length - 1];
      if (!last || last[0] !== ll.lng || last[1] !== ll.lat) state.line.push([ll.lng, ll.lat]);
      mark(ll, "#238b45");
      layers.picks.addLayer(L.polyline(state.line.map(function (p) { return [p[1], p[0]]; }), { color: "#238b45", interactive: false }));
    } else {
      if (!grid) return status("此处没有网格", true);
      state.picks.push(grid.properties.grid_code); mark(ll);
      if (m === "merge" && state.picks.length < 2) return status("已选网格 " + grid.properties.grid_code + "，请点相邻网格");
      requestPreview(build());
    }
  }
  function onDblClick() {
    if (state.mode === "split" && state.picks.length === 1 && state.line.length >= 2 && !state.pending) requestPreview(build());
  }
  function build() {
    var m = state.mode, p = state.picks;
    if (m === "move_building") return { op: m, building_id: p[0], to_grid: p[1] };
    if (m === "move_block") return { op: m, point: p[0], to_grid: p[1] };
    if (m === "merge") return { op: m, grids: [p[0], p[1]] };
    return { op: "split", grid_code: p[0], line: state.line };
  }

  // -- talking to the API ---------------------------------------------------------------
  function post(path, body) {
    var token = tokenBox.value.trim();
    if (!token) return Promise.reject(new Error("请先输入令牌"));
    sessionStorage.setItem("gridgis-token", token);
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (r.status === 401) throw new Error("令牌无效（401）");
        if (!r.ok) throw new Error((j && j.detail) || "请求失败：" + r.status);
        return j;
      });
    });
  }
  function tick(ok) { return ok ? '<span class="ge-yes">✓</span>' : '<span class="ge-no">✗</span>'; }
  function showPreview(p) {
    var rows = "";
    var n = Math.max(p.before.length, p.after.length);
    for (var i = 0; i < n; i++) {
      var b = p.before[i], a = p.after[i];
      rows += "<tr><td>" + (a ? (a.grid_code || "新网格") : b.grid_code + "（并入）") + "</td><td>" +
        (b ? b.households : "—") + " → " + (a ? a.households : "—") + "</td><td>" +
        (b ? b.building_count : "—") + " → " + (a ? a.building_count : "—") + "</td></tr>";
    }
    var c = p.checks;
    $("ge-preview").innerHTML =
      '<table class="ge-table"><tr><th>网格</th><th>户数 前→后</th><th>楼栋 前→后</th></tr>' + rows + "</table>" +
      '<ul class="ge-checks">' +
      '<li data-check="band">' + tick(c.band) + " 户数在 " + p.band[0] + "–" + p.band[1] + " 之间</li>" +
      '<li data-check="contiguity">' + tick(c.contiguity) + " 每个网格连成一片</li>" +
      '<li data-check="tiling">' + tick(c.tiling) + " 无缝无重叠覆盖</li></ul>";
    if (layers.preview) map.removeLayer(layers.preview);
    layers.preview = L.geoJSON(p.geometry, { interactive: false, style: { color: "#d7301f", weight: 3, dashArray: "6 4", fillOpacity: 0 } }).addTo(map);
    $("ge-save").disabled = !(c.contiguity && c.tiling);
  }
  function requestPreview(edit) {
    state.pending = edit;
    status("正在预览…");
    post("/grids/edits/preview", edit).then(function (p) {
      showPreview(p);
      status(p.checks.contiguity && p.checks.tiling ? "预览完成，可保存" : "此编辑不能保存（连续性或无缝覆盖不满足）", !(p.checks.contiguity && p.checks.tiling));
    }).catch(function (e) { status(e.message, true); reset(true); });
  }
  function save() {
    if (!state.pending) return;
    var edit = Object.assign({}, state.pending);
    var reason = $("ge-reason").value.trim();
    if (reason) edit.reason = reason;
    $("ge-save").disabled = true;
    status("正在保存…");
    post("/grids/edits", edit).then(function (r) {
      reset(true);
      status("已保存：" + r.summary);
      window.gridEdit.saved += 1;
      return load(false);
    }).catch(function (e) { status(e.message, true); $("ge-save").disabled = false; });
  }
  function undo() {
    status("正在撤销…");
    post("/grids/edits/undo", {}).then(function (r) {
      reset(true);
      status("已撤销：" + r.summary);
      window.gridEdit.saved += 1;
      return load(false);
    }).catch(function (e) { status(e.message, true); });
  }

  panel.querySelector(".ge-modes").addEventListener("click", function (e) {
    var mode = e.target.getAttribute && e.target.getAttribute("data-mode");
    if (!mode) return;
    state.mode = mode;
    reset(true);
  });
  $("ge-road").addEventListener("change", function () {
    var road = $("ge-road").value;
    if (!road || state.pending) return;
    if (state.mode !== "split" || state.picks.length !== 1) {
      $("ge-road").value = "";
      return status("请先点要拆分的网格", true);
    }
    requestPreview({ op: "split", grid_code: state.picks[0], road_id: road });
  });
  $("ge-save").addEventListener("click", save);
  $("ge-cancel").addEventListener("click", function () { reset(true); status(""); });
  $("ge-undo").addEventListener("click", undo);
  map.on("click", onClick);
  map.on("dblclick", onDblClick);
  window.gridEdit = { map: map, state: state, ready: false, saved: 0 };
  load(true);
})();
