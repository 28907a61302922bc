"""The credit manager's cockpit: aging, DSO, commitments, forecast, reminder effectiveness
and the risk segments learned from payment behaviour (see docs/cockpit.md)."""
