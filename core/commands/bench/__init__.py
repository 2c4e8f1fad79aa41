"""`tfchat bench`: tfchat against the book's loop and its peers, a module per bench; what they
share is in `measures`."""
