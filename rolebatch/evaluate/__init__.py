"""Does the role help?  Scoring an output's answers, and the statistics that
tell a real difference from noise: the wing above the pipeline.

    scorers  what one output line scores: choice, exact, includes, regex, number,
             a response field, or your own function
    questions  the question a line answers; a group's scores question by question
    scores   the scores of every line, per group and question, in one pass in
             flat memory; the study's figures from them
    choosing  what choosing a group is worth (oracle, random, picked on half),
             and whether the best group differs by stratum
    stats    means with (clustered) standard errors and intervals, paired
             differences, McNemar and paired t tests, Holm's adjustment,
             non-inferiority
    gate     the rules a CI job gates on (fail-if-worse, non-inferiority,
             fail-under): passed, failed or undecided (never a pass on nothing),
             decided by those statistics in one Holm family
    earlier   an earlier output's ok lines, and the records file a judge or a
             panel writes from them (replaced only when it changes)
    judging   a judge's records, made from the output it judges (or two outputs
             head to head)
    pairwise  head-to-head judgements per role: wins, ties, losses, consistency
    panels    a panel's records: each question with every role's answer, shuffled
    provenance  what a report is of: models, dates, roles, temperatures, calls,
             the chance level, the version
    study    a report as a straight line: lines read and grouped once, figures
             computed, the gate decided: one Report every format reads
    render   a Report as a table, markdown, CSV, JSON or the page, in one place
    descriptive  the per-group table (records, ok share, latency, tokens, fields)
    tables   the figures as a terminal table, markdown and CSV; the headline
    numbers  how a figure, an interval and a p-value are written, everywhere
    page     the figures as one self-contained HTML page
    plots    its plots as inline SVG: dots on intervals, won/tied/lost bars, legends

It reads output lines (``records``); nothing below imports it.
"""
