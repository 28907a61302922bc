"""Cases: disputes, payment plans and promises to pay, and the decisions on them."""
