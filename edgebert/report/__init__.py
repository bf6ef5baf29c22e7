"""The run report: every artifact's accuracy, size and latency against the teacher."""
