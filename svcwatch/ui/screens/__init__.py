"""Screens of the dashboard: the main four-pane view and the help overlay."""
