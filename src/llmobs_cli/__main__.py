"""``python -m llmobs_cli`` runs the command line."""

from llmobs_cli.cli.app import main

if __name__ == "__main__":
    main()
