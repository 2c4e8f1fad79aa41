"""The output pane and what streams into it: exchanges, comparisons, scored texts, their stats lines."""
