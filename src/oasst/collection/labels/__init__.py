"""Text labels: the label catalogue, free labelling and reports outside the task flow."""
