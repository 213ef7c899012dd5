"""Monitoring: the features of live photos (drift input); drift reports, KPIs and alerts build on them."""
