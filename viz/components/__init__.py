"""The app's components, one module each.

Each component is a pure function of the model's state: it redraws its figures when
``model.steps`` changes (or the model is replaced), and is re-rendered by its parent. The app
subscribes once to Mesa's ``update_counter`` (in ``viz.app.Dashboard``) and re-renders the
open tab from there: one render pass per step, where a subscription in every component would
cost a pass of the whole page each. To use a component in Mesa's own ``SolaraViz``, pass it as
a plain function (``lambda model: NetworkMap(model)``): SolaraViz then wraps it in a
component that follows the update counter.
"""
