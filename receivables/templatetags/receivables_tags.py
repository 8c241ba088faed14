from django import template

register = template.Library()


@register.filter
def lookup(mapping, key):
    """``mapping|lookup:key`` — a dict value by a variable key (aging buckets, customers by currency)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
