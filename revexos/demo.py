"""Logins of the demo tenant (plain data: importable before Django is set up)."""

DEMO_SLUG = "demo"
DEMO_PASSWORD = "revexos-demo"
# (e-mail, role, label)
DEMO_USERS = [
    ("admin@demo.example", "admin", "Admin"),
    ("finance@demo.example", "finance", "Finance"),
    ("am@demo.example", "account_manager", "Account manager"),
    ("viewer@demo.example", "viewer", "Viewer"),
]
