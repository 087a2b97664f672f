"""Operations: the health report (database, broker, workers, embedding backlog).

Sits above the domain apps (it reads their tables to report backlogs) and below nothing: no
domain app imports it.
"""
