package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/validatingadmissionpolicystatus"
)

// startValidatingAdmissionPolicyStatus starts the controller writing the
// type-checking status of ValidatingAdmissionPolicies.
func startValidatingAdmissionPolicyStatus(ctx context.Context, c *controller.Context) error {
	ctrl, err := validatingadmissionpolicystatus.New(c.Client, c.Informers, c.Mapper)
	if err != nil {
		return err
	}
	go ctrl.Run(ctx, 1)
	return nil
}
