from django import template

register = template.Library()


@register.filter
def lookup(mapping, key):
    """``mapping|lookup:key`` — a dict value by a variable key (aging buckets, customers by currency)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


# Stripe's reason codes glue words together (productnotreceived) or join them with "_".
_STRIPE_WORDS = {
    "productnotreceived": "product not received",
    "productunacceptable": "product unacceptable",
    "creditnotprocessed": "credit not processed",
    "subscriptioncanceled": "subscription canceled",
    "bankcannotprocess": "bank cannot process",
    "customerinitiated": "customer initiated",
    "debitnotauthorized": "debit not authorized",
    "incorrectaccountdetails": "incorrect account details",
    "insufficientfunds": "insufficient funds",
}


@register.filter
def stripe_words(code) -> str:
    """needs_response → "needs response", product_not_received → "product not received"."""
    text = str(code or "")
    return _STRIPE_WORDS.get(text.replace("_", ""), text.replace("_", " "))
