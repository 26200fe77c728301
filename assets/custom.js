// Loaded by Solara on every page of the app (the assets folder beside the app's folder).
// Starts loading plotly's widget bundle (5 MB) as soon as the page opens, before any chart's
// widget exists: evaluating the bundle holds the page for a moment (seconds on a busy machine),
// and anywidget drops for good the messages of a widget whose module is not initialized within
// 2 s, so a chart made while the bundle was being evaluated would never update. The bundle's
// name is in public/plotly-widget.json (viz/plotly_bundle.py); each chart's module imports the
// same address (viz/figures.py), so the browser loads and evaluates it once.
//
// anywidget (0.9 to 0.11 alike) also gives every widget's module 2 s, from the moment the
// widget's model is made, to load and initialize (AbortSignal.timeout(2e3) in its Runtime),
// then drops every message to that widget for good ("[anywidget] Failed to initialize
// model."): the chart stays at the figure it was first drawn with. The time counts while the
// page is busy elsewhere (evaluating the bundle, drawing a tab of charts, a loaded machine), so
// it ran out in CI. anywidget's own timer is given 60 s here instead: a module that does not
// load at all still fails, a slow one no longer loses its chart's updates
// (tests/viz/test_app_browser.py: test_charts_whose_module_loads_slowly_still_take_their_updates).
(function () {
  var ANYWIDGET_INIT_MS = 2000;
  var GIVEN_MS = 60000;
  var timeout = AbortSignal.timeout && AbortSignal.timeout.bind(AbortSignal);
  if (!timeout) return;
  AbortSignal.timeout = function (ms) {
    if (ms === ANYWIDGET_INIT_MS && /anywidget/.test(new Error().stack || "")) {
      return timeout(GIVEN_MS);
    }
    return timeout(ms);
  };
})();

(function () {
  var root = (window.solara && window.solara.rootPath) || "";
  fetch(root + "/static/public/plotly-widget.json", { cache: "no-cache" })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (index) {
      if (index && index.bundle) {
        return import(location.origin + root + "/static/public/" + index.bundle);
      }
    })
    .catch(function () {});   // without it, the first chart loads the bundle
})();
