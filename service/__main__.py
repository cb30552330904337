from service.front.server import main

raise SystemExit(main())
