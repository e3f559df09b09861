"""Pure pipeline engine: scheduling, templating and run logic, free of Kubernetes and clocks."""
