"""Widgets that know neither the chat nor the app's state: prompt input, sidebar, status line, key bar,
notices, heat maps, token colours."""
