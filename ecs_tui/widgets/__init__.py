"""Widgets of the app: the configure pane, the live status strip and one widget per view."""
