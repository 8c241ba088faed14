"""Models of this module; see DESIGN.md §3."""
