from kitch.cli import main

raise SystemExit(main())
