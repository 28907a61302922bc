"""The widget on the company's website: allowed host sites, the hand-over of a session
the browser would not keep, and "Pay an invoice" without a link."""
