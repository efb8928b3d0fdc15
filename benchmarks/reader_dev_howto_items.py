"""Development set of how-to QA items for tuning the answer prompt (benchmarks/rag_prompt_dev.py),
written for this project over the TRAINING corpus (corpus/python-3.11-docs.jsonl of the shared data:
the Python 3.11 documentation, PSF-2.0), never an evaluation set.

Questions and answer spans written for this project.
Pages were hand-picked from the HOWTO, installing and library pages that answer common
"How do I ...?" questions, skipping the 13 pages that are in the demo corpus
(library/json and the tutorial pages appetite, classes, controlflow, datastructures, errors,
inputoutput, interpreter, introduction, modules, stdlib, stdlib2 and venv); 16 pages are used.

The item format is that of reader_dev_items.py (contexts: 2-5 consecutive sentences of the page, whitespace
collapsed; answers: spans of the context; None: the context does not answer the question). Run this file with
the corpus path to check every context and answer against the corpus.
"""

ITEMS = [  # (page title, context, question, gold answers or None)
    # --- howto/sorting ---
    ("Sorting HOW TO",
     "You can also use the :meth:`list.sort` method. It modifies the list in-place (and returns ``None`` to avoid confusion). Usually it's less convenient than :func:`sorted` - but if you don't need the original list, it's slightly more efficient.",
     "How do I sort a list in place instead of building a new sorted list?",
     ["use the :meth:`list.sort` method", "list.sort"]),
    ("Sorting HOW TO",
     "Both :meth:`list.sort` and :func:`sorted` accept a *reverse* parameter with a boolean value. This is used to flag descending sorts.",
     "How can I sort a list from largest to smallest?",
     ["accept a *reverse* parameter with a boolean value", "*reverse* parameter"]),

    # --- installing/index ---
    ("Installing Python Modules",
     "Normally, if a suitable module is already installed, attempting to install it again will have no effect. Upgrading existing modules must be requested explicitly:: python -m pip install --upgrade SomePackage",
     "How do I update a package I already installed with pip to its latest version?",
     ["python -m pip install --upgrade SomePackage", "--upgrade"]),
    ("Installing Python Modules",
     "It is possible that ``pip`` does not get installed by default. One potential fix is:: python -m ensurepip --default-pip",
     "What can I do if pip is missing from my Python installation?",
     ["python -m ensurepip --default-pip"]),

    # --- howto/logging ---
    ("Logging HOWTO",
     "If you run the above script several times, the messages from successive runs are appended to the file *example.log*. If you want each run to start afresh, not remembering the messages from earlier runs, you can specify the *filemode* argument, by changing the call in the above example to:: logging.basicConfig(filename='example.log', filemode='w', level=logging.DEBUG) The output will be the same as before, but the log file is no longer appended to, so the messages from earlier runs are lost.",
     "How can I make my log file be overwritten on every run instead of growing?",
     ["specify the *filemode* argument", "filemode='w'"]),
    ("Logging HOWTO",
     "The default format for date/time display (shown above) is like ISO8601 or :rfc:`3339`. If you need more control over the formatting of the date/time, provide a *datefmt* argument to ``basicConfig``, as in this example::",
     "How do I change the way timestamps are formatted in my log messages?",
     ["provide a *datefmt* argument to ``basicConfig``", "*datefmt* argument"]),
    ("Logging HOWTO",  # unanswerable
     "The call to :func:`basicConfig` should come *before* any calls to :func:`debug`, :func:`info`, etc. Otherwise, those functions will call :func:`basicConfig` for you with the default options. As it's intended as a one-off simple configuration facility, only the first call will actually do anything: subsequent calls are effectively no-ops.",
     "How do I rotate my log file once it grows beyond a certain size?",
     None),

    # --- library/venv ---
    (":mod:`venv` --- Creation of virtual environments",
     "You can deactivate a virtual environment by typing ``deactivate`` in your shell. The exact mechanism is platform-specific and is an internal implementation detail (typically, a script or shell function will be used).",
     "How do I get out of a virtual environment once I'm done with it?",
     ["typing ``deactivate`` in your shell", "deactivate"]),
    (":mod:`venv` --- Creation of virtual environments",
     "When a Python interpreter is running from a virtual environment, :data:`sys.prefix` and :data:`sys.exec_prefix` point to the directories of the virtual environment, whereas :data:`sys.base_prefix` and :data:`sys.base_exec_prefix` point to those of the base Python used to create the environment. It is sufficient to check ``sys.prefix == sys.base_prefix`` to determine if the current interpreter is running from a virtual environment.",
     "How can my program tell whether it is running inside a virtual environment?",
     ["check ``sys.prefix == sys.base_prefix``", "sys.prefix == sys.base_prefix"]),
    (":mod:`venv` --- Creation of virtual environments",  # unanswerable
     "You don't specifically *need* to activate a virtual environment, as you can just specify the full path to that environment's Python interpreter when invoking Python. Furthermore, all scripts installed in the environment should be runnable without activating it.",
     "How do I switch an existing virtual environment to a newer Python version?",
     None),

    # --- library/timeit ---
    (":mod:`timeit` --- Measure execution time of small code snippets",
     "By default, :meth:`.timeit` temporarily turns off :term:`garbage collection` during the timing. The advantage of this approach is that it makes independent timings more comparable. The disadvantage is that GC may be an important component of the performance of the function being measured. If so, GC can be re-enabled as the first statement in the *setup* string.",
     "How do I keep garbage collection turned on while timing code with timeit?",
     ["re-enabled as the first statement in the *setup* string", "the first statement in the *setup* string"]),
    (":mod:`timeit` --- Measure execution time of small code snippets",  # unanswerable
     "This module provides a simple way to time small bits of Python code. It has both a :ref:`timeit-command-line-interface` as well as a :ref:`callable <python-interface>` one. It avoids a number of common traps for measuring execution times.",
     "How do I find out which functions in my whole program use the most time?",
     None),

    # --- library/copy ---
    (":mod:`copy` --- Shallow and deep copy operations",
     "It does \"copy\" functions and classes (shallow and deeply), by returning the original object unchanged; this is compatible with the way these are treated by the :mod:`pickle` module. Shallow copies of dictionaries can be made using :meth:`dict.copy`, and of lists by assigning a slice of the entire list, for example, ``copied_list = original_list[:]``.",
     "How do I make a shallow copy of a list without importing anything?",
     ["assigning a slice of the entire list", "copied_list = original_list[:]"]),
    (":mod:`copy` --- Shallow and deep copy operations",  # unanswerable
     "Assignment statements in Python do not copy objects, they create bindings between a target and an object. For collections that are mutable or contain mutable items, a copy is sometimes needed so one can change one copy without changing the other. This module provides generic shallow and deep copy operations (explained below).",
     "How do I check whether two variables refer to the very same object?",
     None),

    # --- library/tempfile ---
    (":mod:`tempfile` --- Generate temporary files and directories",
     "The directory name can be retrieved from the :attr:`name` attribute of the returned object. When the returned object is used as a context manager, the :attr:`name` will be assigned to the target of the :keyword:`!as` clause in the :keyword:`with` statement, if there is one. The directory can be explicitly cleaned up by calling the :func:`cleanup` method.",
     "How do I delete a TemporaryDirectory myself instead of waiting for it to be cleaned up automatically?",
     ["calling the :func:`cleanup` method", "cleanup"]),

    # --- library/__main__ ---
    (":mod:`__main__` --- Top-level code environment",
     "Some modules contain code that is intended for script use only, like parsing command-line arguments or fetching data from standard input. If a module like this was imported from a different module, for example to unit test it, the script code would unintentionally execute as well. This is where using the ``if __name__ == '__main__'`` code block comes in handy. Code within this block won't run unless the module is executed in the top-level environment.",
     "How can I stop my script's code from running when the file is imported by another module?",
     ["using the ``if __name__ == '__main__'`` code block", "if __name__ == '__main__'"]),
    (":mod:`__main__` --- Top-level code environment",
     "Most commonly, the ``__main__.py`` file is used to provide a command-line interface for a package. Consider the following hypothetical package, \"bandclass\": .. code-block:: text bandclass ├── __init__.py ├── __main__.py └── student.py ``__main__.py`` will be executed when the package itself is invoked directly from the command line using the :option:`-m` flag.",
     "How do I make my package runnable with python -m packagename?",
     ["the ``__main__.py`` file", "__main__.py"]),

    # --- library/shutil ---
    (":mod:`shutil` --- High-level file operations",
     ":func:`~shutil.copy` copies the file data and the file's permission mode (see :func:`os.chmod`). Other metadata, like the file's creation and modification times, is not preserved. To preserve all file metadata from the original, use :func:`~shutil.copy2` instead.",
     "How do I copy a file and keep its original modification time?",
     ["use :func:`~shutil.copy2` instead", "shutil.copy2"]),

    # --- howto/urllib2 ---
    ("HOWTO Fetch Internet Resources Using The urllib Package",
     "By default the socket module has *no timeout* and can hang. Currently, the socket timeout is not exposed at the http.client or urllib.request levels. However, you can set the default timeout globally for all sockets using :: import socket import urllib.request # timeout in seconds timeout = 10 socket.setdefaulttimeout(timeout)",
     "How can I keep a urllib request from hanging forever on a slow server?",
     ["set the default timeout globally for all sockets", "socket.setdefaulttimeout(timeout)"]),
    ("HOWTO Fetch Internet Resources Using The urllib Package",
     "By default urllib identifies itself as ``Python-urllib/x.y`` (where ``x`` and ``y`` are the major and minor version numbers of the Python release, e.g. ``Python-urllib/2.5``), which may confuse the site, or just plain not work. The way a browser identifies itself is through the ``User-Agent`` header [#]_. When you create a Request object you can pass a dictionary of headers in.",
     "How do I make urllib send a browser-like user agent string?",
     ["pass a dictionary of headers in", "the ``User-Agent`` header"]),

    # --- howto/argparse ---
    ("Argparse Tutorial",
     "Note that we now specify a new keyword, ``action``, and give it the value ``\"store_true\"``. This means that, if the option is specified, assign the value ``True`` to :data:`args.verbose`. Not specifying it implies ``False``.",
     "How do I add an on/off command-line flag that doesn't take a value with argparse?",
     ["give it the value ``\"store_true\"``", "store_true"]),
    ("Argparse Tutorial",
     "So far, we have been working with two methods of an :class:`argparse.ArgumentParser` instance. Let's introduce a third one, :meth:`add_mutually_exclusive_group`. It allows for us to specify options that conflict with each other.",
     "How can I prevent users from passing --verbose and --quiet together?",
     [":meth:`add_mutually_exclusive_group`", "add_mutually_exclusive_group"]),

    # --- howto/regex ---
    ("Regular Expression HOWTO",
     "The final match extends from the ``'<'`` in ``'<html>'`` to the ``'>'`` in ``'</title>'``, which isn't what you want. In this case, the solution is to use the non-greedy quantifiers ``*?``, ``+?``, ``??``, or ``{m,n}?``, which match as *little* text as possible.",
     "How do I stop .* in a regular expression from matching too much text?",
     ["use the non-greedy quantifiers", "non-greedy quantifiers"]),
    ("Regular Expression HOWTO",
     r"""In REs that feature backslashes repeatedly, this leads to lots of repeated backslashes and makes the resulting strings difficult to understand. The solution is to use Python's raw string notation for regular expressions; backslashes are not handled in any special way in a string literal prefixed with ``'r'``, so ``r"\n"`` is a two-character string containing ``'\'`` and ``'n'``, while ``"\n"`` is a one-character string containing a newline. Regular expressions will often be written in Python code using this raw string notation.""",
     "How can I write regex patterns without doubling every backslash?",
     ["use Python's raw string notation", "raw string notation"]),
    ("Regular Expression HOWTO",  # unanswerable
     "The RE is passed to :func:`re.compile` as a string. REs are handled as strings because regular expressions aren't part of the core Python language, and no special syntax was created for expressing them. (There are applications that don't need REs at all, so there's no need to bloat the language specification by including them.)",
     "How do I make the dot in a regex match newline characters too?",
     None),

    # --- library/functools ---
    (":mod:`functools` --- Higher-order functions and operations on callable objects",
     "Simple lightweight unbounded function cache. Sometimes called `\"memoize\" <https://en.wikipedia.org/wiki/Memoization>`_. Returns the same as ``lru_cache(maxsize=None)``, creating a thin wrapper around a dictionary lookup for the function arguments. Because it never needs to evict old values, this is smaller and faster than :func:`lru_cache()` with a size limit.",
     "How do I memoize a function with a cache that never evicts anything?",
     ["``lru_cache(maxsize=None)``", "lru_cache(maxsize=None)"]),

    # --- library/subprocess ---
    (":mod:`subprocess` --- Subprocess management",
     "(*timeout*, *input*, *check*, and *capture_output* are not.) If *capture_output* is true, stdout and stderr will be captured. When used, the internal :class:`Popen` object is automatically created with ``stdout=PIPE`` and ``stderr=PIPE``.",
     "How do I get the output of a command I run with subprocess.run?",
     ["If *capture_output* is true", "capture_output"]),
    (":mod:`subprocess` --- Subprocess management",  # unanswerable
     "Run the command described by *args*. Wait for command to complete, then return a :class:`CompletedProcess` instance. The arguments shown above are merely the most common ones, described below in :ref:`frequently-used-arguments` (hence the use of keyword-only notation in the abbreviated signature).",
     "How do I send a signal to a child process to make it stop?",
     None),

    # --- library/pdb ---
    (":mod:`pdb` --- The Python Debugger",
     "The typical usage to break into the debugger is to insert:: import pdb; pdb.set_trace() at the location you want to break into the debugger, and then run the program. You can then step through the code following this statement, and continue running without the debugger using the :pdbcmd:`continue` command. .. versionadded:: 3.7 The built-in :func:`breakpoint()`, when called with defaults, can be used instead of ``import pdb; pdb.set_trace()``.",
     "How do I pause my program at a particular line and start the debugger there?",
     ["import pdb; pdb.set_trace()", "breakpoint()"]),

    # --- howto/unicode ---
    ("Unicode HOWTO",
     "One tool for a case-insensitive comparison is the :meth:`~str.casefold` string method that converts a string to a case-insensitive form following an algorithm described by the Unicode Standard. This algorithm has special handling for characters such as the German letter 'ß' (code point U+00DF), which becomes the pair of lowercase letters 'ss'.",
     "How do I compare two strings while ignoring case, including letters like ß?",
     ["the :meth:`~str.casefold` string method", "casefold"]),
]


if __name__ == "__main__":
    import json
    import re
    import sys

    def _collapse(s):
        return re.sub(r"\s+", " ", s).strip()

    pages = {}
    with open(sys.argv[1], encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            pages.setdefault(rec["title"], []).append(_collapse(rec["text"]))

    n_ans = n_unans = 0
    for title, context, question, gold in ITEMS:
        assert title in pages, f"no page titled {title!r}"
        assert any(context in text for text in pages[title]), f"context not verbatim in {title!r}: {context[:60]!r}"
        assert question.strip(), "empty question"
        if gold is None:
            n_unans += 1
        else:
            n_ans += 1
            assert 1 <= len(gold) <= 3, f"bad gold list for {question!r}"
            for g in gold:
                assert g in context, f"gold {g!r} not in context for {question!r}"
    print(f"ok {len(ITEMS)} items")
    print(f"({n_ans} answerable, {n_unans} unanswerable, {len({t for t, *_ in ITEMS})} pages)")
