"""A PostgreSQL server the project runs itself: the development cluster and the test suite's throwaway ones.

Standard library only. ``binaries`` finds the server programs, ``safety`` holds the checks that keep other
accounts out, ``cluster`` runs one cluster, ``cache`` keeps initialised data directories to copy instead of
running initdb, and ``throwaway`` starts and reaps the disposable servers of tests and checks.
"""
