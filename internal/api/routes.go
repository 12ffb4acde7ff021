package api

import "net/http"

// routes is the table of contents of the API, in the order of the OpenAPI
// document (openapi.yaml).
func (s *Server) routes(metricsHandler http.Handler, extra map[string]http.Handler) {
	// Qovery's Organization Webhook operations.
	s.handleOrg("GET /organization/{organizationId}/webhook", s.listWebhooks)
	s.handleOrg("POST /organization/{organizationId}/webhook", s.createWebhook)
	s.handleOrg("GET /organization/{organizationId}/webhook/{webhookId}", s.getWebhook)
	s.handleOrg("PUT /organization/{organizationId}/webhook/{webhookId}", s.editWebhook)
	s.handleOrg("DELETE /organization/{organizationId}/webhook/{webhookId}", s.deleteWebhook)
	s.handleOrg("GET /organization/{organizationId}/webhook/{webhookId}/event", s.listWebhookEvents)

	// hookd's own: intake, deliveries, test events, recovery, stats, the audit trail.
	s.handleIntake("POST /organization/{organizationId}/deployment-event", s.createDeploymentEvent)
	s.handleOrg("GET /organization/{organizationId}/webhook/{webhookId}/delivery", s.listDeliveries)
	s.handleOrg("POST /organization/{organizationId}/webhook/{webhookId}/delivery/{deliveryId}/retry", s.retryDelivery)
	s.handleOrg("POST /organization/{organizationId}/webhook/{webhookId}/test", s.testWebhook)
	s.handleOrg("POST /organization/{organizationId}/webhook/{webhookId}/recover", s.recoverWebhook)
	s.handleOrg("GET /organization/{organizationId}/webhook/{webhookId}/stats", s.webhookStats)
	s.handleOrg("GET /organization/{organizationId}/audit", s.listAudit)

	// Event sources: tools that report deployments themselves. Ingest has
	// no API token: the tool's signature is its credential.
	s.handleOrg("GET /organization/{organizationId}/source", s.listSources)
	s.handleOrg("POST /organization/{organizationId}/source", s.createSource)
	s.handleOrg("GET /organization/{organizationId}/source/{sourceId}", s.getSource)
	s.handleOrg("PUT /organization/{organizationId}/source/{sourceId}", s.editSource)
	s.handleOrg("DELETE /organization/{organizationId}/source/{sourceId}", s.deleteSource)
	s.handle("POST /organization/{organizationId}/source/{sourceId}/ingest", s.bounded(s.ingestSource))

	// Operations, without authentication.
	s.handle("GET /healthz", s.healthz)
	s.handle("GET /readyz", s.readyz)
	s.handle("GET /openapi.yaml", s.openAPI)
	if metricsHandler != nil {
		s.mux.Handle("GET /metrics", metricsHandler)
	}
	for pattern, h := range extra {
		s.mux.Handle(pattern, h)
	}
}
