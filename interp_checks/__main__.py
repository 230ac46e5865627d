from interp_checks.cli import main

raise SystemExit(main())
