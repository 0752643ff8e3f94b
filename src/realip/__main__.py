from realip.cli import main

raise SystemExit(main())
