"""`python -m tfchat`: the command line (`tfchat.tui.cli`), the app when no command is given."""
import sys

from tfchat.tui.cli import main

if __name__ == "__main__":  # not when multiprocessing's spawn re-imports the main module in a child
    sys.exit(main())
