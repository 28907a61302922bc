"""The reminder editor: scenarios and message texts that credit managers change in the back
office, every change kept as a version (who, when)."""
