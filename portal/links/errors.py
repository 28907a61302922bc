class LinkError(Exception):
    """Base of the link domain's errors."""


class UnknownCustomer(LinkError):
    pass


class UnknownInvoice(LinkError):
    def __init__(self, numbers: list[str]) -> None:
        super().__init__(f"no such invoice for this customer: {', '.join(numbers)}")
        self.numbers = numbers


class LinkRejected(LinkError):
    """The link cannot open a session. ``reason`` is invalid, expired or revoked."""

    def __init__(self, reason: str, customer_id: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.customer_id = customer_id


class TooManyRequests(LinkError):
    pass
