from service.model_worker.serve import main

raise SystemExit(main())
