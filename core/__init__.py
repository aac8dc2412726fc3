"""Kate's bottom layer: the one Settings object read from the environment, and the wiring that builds the
knowledge layer, the reader and the ranker from it. Imports Kate's libraries (qa_engine, knowledge)
and nothing above them: the servers (actions, admin), the measurements (measure) and the command
line (kate) all stand on it."""
