"""Speech the INT8 graph is judged on (never calibrated on): with the bundled demo speech, the accuracy clips."""
