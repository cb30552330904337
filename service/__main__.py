from service.front.server.launcher import main

raise SystemExit(main())
