"""The page's layout on a narrow screen: the sidebar starts closed under :data:`NARROW_PX` (the
browser reports its width once: ``viewport.vue``); the app bar's ☰ opens and closes it. Each
chart follows its card's width by itself (``figure_tools.vue``)."""

from __future__ import annotations

import solara

NARROW_PX = 1100  # a window narrower than this starts with the sidebar closed (the app bar's ☰ opens it)

# whether the sidebar is open: one value per browser session (a solara.reactive at module level
# is kept per kernel); the app's Layout hands it to solara.AppLayout
sidebar_open = solara.reactive(True)


@solara.component_vue("viewport.vue")
def ViewportWatch(event_viewport=None):
    """Reports the window's width once, when the page shows (``event_viewport(width)``)."""


def on_viewport(width) -> None:
    """The window's width when the page showed: a narrow one closes the sidebar."""
    try:
        narrow = int(width) < NARROW_PX
    except (TypeError, ValueError):
        return
    if narrow:
        sidebar_open.set(False)


@solara.component
def Layout(children=[]):
    """solara's AppLayout (app bar, sidebar, main area), with the sidebar's state from here."""
    return solara.AppLayout(children=children, sidebar_open=sidebar_open.value)
