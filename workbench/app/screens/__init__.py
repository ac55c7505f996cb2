"""The workbench's screens: Live, Chat, Replay (and one episode), Runs, the welcome screen, dialogs."""
