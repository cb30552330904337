from service.server import main

raise SystemExit(main())
