"""The reading room: a web app over the warehouse (newsmon web; docs/web.md)."""
