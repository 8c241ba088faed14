"""Customer statements of account (placeholder until the statement module lands below)."""


def statements_monthly_send(*, as_of) -> list[str]:
    return []
