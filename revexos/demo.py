"""Logins of the demo tenant (plain data: importable before Django is set up)."""

DEMO_SLUG = "demo"
DEMO_PASSWORD = "revexos-demo"
# (e-mail, role, role label, full name)
DEMO_USERS = [
    ("admin@demo.example", "admin", "Admin", "Dana Whitfield"),
    ("finance@demo.example", "finance", "Finance", "Priya Raman"),
    ("am@demo.example", "account_manager", "Account manager", "Marco Bellini"),
    ("viewer@demo.example", "viewer", "Viewer", "Sam Okafor"),
]
